-- Web Push devices (docs/push.md): platform 'webpush', whose push token is the W3C
-- PushSubscription JSON. The column's CHECK is the one PostgreSQL named
-- `devices_platform_check` in 0001.
ALTER TABLE devices DROP CONSTRAINT devices_platform_check;
ALTER TABLE devices ADD CONSTRAINT devices_platform_check
    CHECK (platform IN ('ios', 'android', 'webpush', 'other'));
