-- Change events travel through a table instead of one NOTIFY per row.
--
-- Migration 0002 NOTIFYed every row change. PostgreSQL serialises the commits of notifying
-- transactions (a global lock is held from the notification until the commit is flushed), which
-- defeats group commit and capped writes at about 2,000 per second. Now every row change is a
-- row in `resource_changes`; control planes read that table (woken by a NOTIFY that each of
-- them sends at most every few milliseconds, and by a periodic poll) and delete rows once every
-- instance has had ample time to read them. See docs/postgres.md.
--
-- Control planes running the previous version stop seeing changes once this is applied:
-- stop them, migrate, then start the new version.

DROP TRIGGER resources_notify_change ON resources;
DROP FUNCTION kuma_notify_resource_change();

-- One row per changed resource row, cascaded deletes included. `id` orders the changes of one
-- resource as they were committed (the row lock makes a second writer wait until the first
-- commits, and ids are drawn after that); ids of different resources may become visible out of
-- order, which readers handle.
CREATE TABLE resource_changes (
    id         bigserial    PRIMARY KEY,
    op         text         NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    type       varchar(100) NOT NULL,
    mesh       varchar(100) NOT NULL,
    name       varchar(100) NOT NULL,
    changed_at timestamptz  NOT NULL DEFAULT now()
);

CREATE FUNCTION kuma_record_resource_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO resource_changes (op, type, mesh, name)
        VALUES ('create', NEW.type, NEW.mesh, NEW.name);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO resource_changes (op, type, mesh, name)
        VALUES ('delete', OLD.type, OLD.mesh, OLD.name);
    ELSIF (NEW.type, NEW.mesh, NEW.name) IS DISTINCT FROM (OLD.type, OLD.mesh, OLD.name) THEN
        -- kuma-py never renames a row; a hand-written UPDATE that does is a delete + create
        INSERT INTO resource_changes (op, type, mesh, name)
        VALUES ('delete', OLD.type, OLD.mesh, OLD.name), ('create', NEW.type, NEW.mesh, NEW.name);
    ELSE
        INSERT INTO resource_changes (op, type, mesh, name)
        VALUES ('update', NEW.type, NEW.mesh, NEW.name);
    END IF;
    RETURN NULL;
END;
$$;

-- The name sorts after the foreign-key triggers ("RI_ConstraintTrigger_..."), which PostgreSQL
-- fires first, so a write refused for a missing owner never draws a change id.
CREATE TRIGGER resources_record_change
    AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION kuma_record_resource_change();

-- A role that was allowed to use `resources` before this migration keeps working after it:
-- writes now also insert change rows (through the trigger, with the writer's privileges), and
-- `kuma-cp run` reads and prunes them. New roles are granted as docs/postgres.md says.
DO $$
DECLARE
    grantee_ oid;
    role_ text;
BEGIN
    FOR grantee_ IN
        SELECT DISTINCT acl.grantee
        FROM pg_class c, aclexplode(c.relacl) AS acl
        WHERE c.oid = 'resources'::regclass AND acl.grantee <> c.relowner
    LOOP
        role_ := CASE WHEN grantee_ = 0 THEN 'PUBLIC'
                      ELSE quote_ident(pg_get_userbyid(grantee_)) END;
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON resource_changes TO %s', role_);
        EXECUTE format(
            'GRANT USAGE, SELECT ON SEQUENCE %s TO %s',
            pg_get_serial_sequence('resource_changes', 'id'),
            role_
        );
    END LOOP;
END;
$$;
