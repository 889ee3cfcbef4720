-- The boot backend's MAC table carries each node's boot loader, chosen from its profile (server/boot-backend.ts
-- bootloaderOf): DHCP hands a shim-grub node shimx64.efi instead of iPXE (boot/dhcp/bootfile.ts). 0011's row
-- trigger on nodes watched state, hostname and labels but not profile, so an explicit profile assignment reached
-- the other replicas only at their next periodic reload (60 s). It now watches profile too, with the same function
-- (bootfarm_mac_changed: bump the sequence, notify bootfarm_macs at commit). Still row-level with a WHEN, so the
-- heartbeat's touch (lastHeartbeat, and a profile written back unchanged) wakes no replica.
DROP TRIGGER IF EXISTS "nodes_mac_changes" ON "nodes";--> statement-breakpoint
CREATE TRIGGER "nodes_mac_changes" AFTER UPDATE ON "nodes" FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.hostname IS DISTINCT FROM NEW.hostname OR OLD.labels IS DISTINCT FROM NEW.labels OR OLD.profile IS DISTINCT FROM NEW.profile) EXECUTE FUNCTION "bootfarm_mac_changed"();
