-- A challenge's creation in one call (server/store-postgres/src/create.rs). The store
-- reads the cardholder's status, pending count and devices without a lock, the server
-- plans from that view, and this function writes the plan only if the view still holds
-- under the cardholder's row lock: same status, same pending count, the same device
-- rows (each row version, by `xmin`) and no challenge yet for the reference. It returns
-- the outbox rows' ids in the order given, or NULL, having written nothing, when the
-- view changed; the store then plans again inside its locked transaction, as before
-- this function. Every statement of a PL/pgSQL function takes a fresh snapshot under
-- READ COMMITTED, so the count and the devices are read after the lock, like that
-- transaction reads them.

-- The device rows of a cardholder as a comparable text: id and row version of each.
CREATE FUNCTION pushauth_devices_seen(p_cardholder TEXT) RETURNS TEXT
LANGUAGE sql STABLE AS $$
    SELECT string_agg(d.id || ':' || d.xmin::text, ',' ORDER BY d.id)
    FROM devices d WHERE d.cardholder_id = p_cardholder
$$;

CREATE FUNCTION pushauth_create_challenge_checked(
    -- what the plan saw
    p_cardholder TEXT, p_status TEXT, p_pending BIGINT, p_devices TEXT, p_now BIGINT,
    -- the challenge
    p_id TEXT, p_provider TEXT, p_provider_ref TEXT, p_kind TEXT, p_amount_minor BIGINT,
    p_currency TEXT, p_payee TEXT, p_nonce TEXT, p_txn_digest TEXT, p_deadline BIGINT,
    p_upstream_deadline BIGINT, p_processor_input TEXT, p_context JSONB, p_upstream_status TEXT,
    p_created_at BIGINT,
    -- its outbox rows, one array element each
    o_kind TEXT[], o_device TEXT[], o_payload JSONB[], o_next_attempt_at BIGINT[],
    o_deadline BIGINT[], o_leased_until BIGINT[],
    -- its audit entry, and the issuer event it causes (NULLs when none)
    a_at BIGINT, a_actor TEXT, a_action TEXT, a_challenge TEXT, a_device TEXT, a_cardholder TEXT,
    a_details TEXT, e_id TEXT, e_type TEXT, e_body TEXT
) RETURNS BIGINT[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held TEXT;
    row_id BIGINT;
    ids BIGINT[] := '{}';
BEGIN
    SELECT h.status INTO held FROM cardholders h WHERE h.id = p_cardholder FOR NO KEY UPDATE;
    IF held IS DISTINCT FROM p_status THEN
        RETURN NULL;
    END IF;
    -- `deadline + 0`: the same index as the store's own count (see challenges.rs).
    IF (SELECT count(*) FROM challenges c
         WHERE c.cardholder_id = p_cardholder AND c.status = 'pending' AND c.deadline + 0 > p_now)
         <> p_pending
       OR pushauth_devices_seen(p_cardholder) IS DISTINCT FROM p_devices THEN
        RETURN NULL;
    END IF;
    INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee,
                            nonce, txn_digest, deadline, upstream_deadline, processor_input, context,
                            status, upstream_status, created_at)
    VALUES (p_id, p_cardholder, p_provider, p_provider_ref, p_kind, p_amount_minor, p_currency, p_payee,
            p_nonce, p_txn_digest, p_deadline, p_upstream_deadline, p_processor_input, p_context,
            'pending', p_upstream_status, p_created_at)
    ON CONFLICT (provider, provider_ref) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(o_kind), 0) LOOP
        INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at,
                            deadline, created_at, claim_no, leased_until)
        VALUES (o_kind[i], p_id, o_device[i], o_payload[i], 'pending', 0, o_next_attempt_at[i],
                o_deadline[i], p_created_at, CASE WHEN o_leased_until[i] IS NULL THEN 0 ELSE 1 END,
                o_leased_until[i])
        RETURNING id INTO row_id;
        ids := ids || row_id;
    END LOOP;
    INSERT INTO audit_log (at, actor, action, challenge_id, device_id, cardholder_id, details)
    VALUES (a_at, a_actor, a_action, a_challenge, a_device, a_cardholder, a_details);
    IF e_id IS NOT NULL THEN
        INSERT INTO issuer_events (id, type, body, created_at) VALUES (e_id, e_type, e_body, a_at);
    END IF;
    RETURN ids;
END
$$;
