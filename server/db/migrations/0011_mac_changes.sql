-- The boot backend's MAC table (server/boot-backend.ts) is a per-replica snapshot: a change another replica makes
-- to what DHCP answers (an interface registered or moved, a node's state, hostname or labels — reservations live
-- in labels — or a node deleted) bumps this sequence and notifies channel bootfarm_macs at commit. Replicas LISTEN,
-- and poll the sequence as a bounded fallback (server/store/mac-changes.ts).
CREATE SEQUENCE IF NOT EXISTS "bootfarm_mac_changes";--> statement-breakpoint
CREATE OR REPLACE FUNCTION "bootfarm_mac_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('bootfarm_mac_changes');
  PERFORM pg_notify('bootfarm_macs', '');
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "interfaces_mac_changes" AFTER INSERT OR UPDATE OR DELETE ON "interfaces" FOR EACH STATEMENT EXECUTE FUNCTION "bootfarm_mac_changed"();--> statement-breakpoint
CREATE TRIGGER "nodes_mac_changes" AFTER UPDATE ON "nodes" FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.hostname IS DISTINCT FROM NEW.hostname OR OLD.labels IS DISTINCT FROM NEW.labels) EXECUTE FUNCTION "bootfarm_mac_changed"();--> statement-breakpoint
CREATE TRIGGER "nodes_mac_deletes" AFTER DELETE ON "nodes" FOR EACH STATEMENT EXECUTE FUNCTION "bootfarm_mac_changed"();
