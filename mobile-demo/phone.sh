#!/usr/bin/env bash
# The virtual phone by hand: builds what is missing, then runs it.
#
#   bash mobile-demo/phone.sh enroll 'pushauth://enroll?v=1&server=…&code=…'
#   bash mobile-demo/phone.sh run                 # interactive: y / n / x = not me
#   bash mobile-demo/phone.sh run --auto approve --once --timeout 60
#   bash mobile-demo/phone.sh status | reset
#
# State lives in --dir DIR, else $DEMO_PHONE_DIR, else mobile-demo/.pushauth-phone (ignored
# by git), and survives restarts: keys, enrollment state, push registration.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export DEMO_PHONE_DIR="${DEMO_PHONE_DIR:-$DEMO/.pushauth-phone}"
build_phone
phone "$@"
