"""A virtual phone for the console's browser test, on the mobile SDK's Python
bindings (pushauth.py and the debug cdylib, put on PYTHONPATH by run.sh). Its keys
(SoftwareKeyStore) and enrollment state are kept in a directory between calls.

    python3 device.py enroll DIR DEEPLINK   -> prints the device id
    python3 device.py approve DIR CHALLENGE -> approves it as the cardholder would
"""

import asyncio
import os
import pathlib
import sys

import pushauth as pa


def run(coro):
    """Runs SDK coroutines on a fresh event loop (also the loop the SDK calls back on)."""
    loop = asyncio.new_event_loop()
    pa.uniffi_set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def enroll(directory, link):
    store = pa.SoftwareKeyStore()
    request = pa.EnrollRequest(activation=link, server_url=None, platform=pa.Platform.OTHER,
                               label="console test phone")
    state = run(pa.enroll(request, store))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "keys.bin").write_bytes(store.export_state())
    (directory / "state.json").write_text(pa.enrollment_state_to_json(state), encoding="utf-8")
    print(state.device_id)


def approve(directory, challenge):
    store = pa.SoftwareKeyStore.import_state((directory / "keys.bin").read_bytes())
    state = pa.enrollment_state_from_json((directory / "state.json").read_text(encoding="utf-8"))
    client = pa.PushAuthClient(state, store)

    async def flow():
        view = await client.challenge(challenge)
        return await client.approve(view, None)

    outcome = run(flow())
    if outcome != pa.DecisionOutcome.APPROVED():
        raise SystemExit("approval not accepted: %r" % (outcome,))
    print("approved", challenge)


def main(argv):
    if len(argv) != 4 or argv[1] not in ("enroll", "approve"):
        raise SystemExit(__doc__)
    directory = pathlib.Path(argv[2])
    if argv[1] == "enroll":
        enroll(directory, argv[3])
    else:
        approve(directory, argv[3])


if __name__ == "__main__":
    main(sys.argv)
    # Leave without interpreter finalisation: the SDK's runtime threads may still be
    # parked in Rust then, and CPython ending them at exit aborts the process now and
    # then ("FATAL: exception not rethrown") after the work is done.
    sys.stdout.flush()
    os._exit(0)
