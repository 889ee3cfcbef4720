CREATE TABLE "bmcs" (
	"node_uuid" text PRIMARY KEY NOT NULL,
	"driver" text NOT NULL,
	"address" text NOT NULL,
	"port" integer,
	"username" text NOT NULL,
	"password_enc" text NOT NULL,
	"options" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "conflicts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"kind" text NOT NULL,
	"value" text NOT NULL,
	"other_uuid" text NOT NULL,
	"detected_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"kind" text NOT NULL,
	"from_state" text,
	"to_state" text,
	"reason" text,
	"actor" text NOT NULL,
	"data" jsonb
);
--> statement-breakpoint
CREATE TABLE "facts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"collected_at" timestamp with time zone DEFAULT now() NOT NULL,
	"agent_version" text,
	"facts" jsonb NOT NULL,
	"failures" jsonb DEFAULT '[]'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "interfaces" (
	"mac" text PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"name" text,
	"driver" text,
	"firmware_version" text,
	"switch_chassis" text,
	"switch_name" text,
	"switch_port" text,
	"switch_port_description" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "nodes" (
	"uuid" text PRIMARY KEY NOT NULL,
	"serial" text,
	"manufacturer" text,
	"product" text,
	"hostname" text,
	"state" text NOT NULL,
	"state_since" timestamp with time zone DEFAULT now() NOT NULL,
	"state_reason" text,
	"held_from" text,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"profile" text,
	"last_seen" timestamp with time zone,
	"last_heartbeat" timestamp with time zone,
	"kernel_digest" text,
	"initrd_digest" text,
	"image_name" text,
	"image_version" text,
	"boot_token_hash" text,
	"boot_token_issued_at" timestamp with time zone,
	"rebuild_attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "bmcs" ADD CONSTRAINT "bmcs_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "conflicts" ADD CONSTRAINT "conflicts_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "facts" ADD CONSTRAINT "facts_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "interfaces" ADD CONSTRAINT "interfaces_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "conflicts_open_uq" ON "conflicts" USING btree ("node_uuid","kind","value","other_uuid") WHERE resolved_at is null;--> statement-breakpoint
CREATE INDEX "events_node_idx" ON "events" USING btree ("node_uuid","id");--> statement-breakpoint
CREATE INDEX "facts_node_idx" ON "facts" USING btree ("node_uuid","collected_at");--> statement-breakpoint
CREATE INDEX "interfaces_node_idx" ON "interfaces" USING btree ("node_uuid");--> statement-breakpoint
CREATE INDEX "nodes_state_idx" ON "nodes" USING btree ("state");--> statement-breakpoint
CREATE INDEX "nodes_serial_idx" ON "nodes" USING btree ("serial");