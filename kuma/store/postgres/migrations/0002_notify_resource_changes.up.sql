-- Every committed change to `resources` (cascaded deletes included) is announced on the
-- channel `kuma_resource_changes`, so each control plane sharing the database can follow it.
-- Payload: {"op": "create" | "update" | "delete", "type": ..., "mesh": ..., "name": ...}
CREATE FUNCTION kuma_notify_resource_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_ resources%ROWTYPE;
    op_ text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_ := OLD;
        op_ := 'delete';
    ELSIF TG_OP = 'INSERT' THEN
        row_ := NEW;
        op_ := 'create';
    ELSE
        row_ := NEW;
        op_ := 'update';
    END IF;
    PERFORM pg_notify(
        'kuma_resource_changes',
        json_build_object('op', op_, 'type', row_.type, 'mesh', row_.mesh, 'name', row_.name)::text
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER resources_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION kuma_notify_resource_change();
