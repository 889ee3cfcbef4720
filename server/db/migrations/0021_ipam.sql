CREATE TABLE "allocations" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"network" text NOT NULL,
	"node_uuid" text,
	"interface" text,
	"mac" text,
	"address" text NOT NULL,
	"reserved" boolean DEFAULT false NOT NULL,
	"state" text DEFAULT 'allocated' NOT NULL,
	"note" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "networks" (
	"name" text PRIMARY KEY NOT NULL,
	"cidr" text NOT NULL,
	"family" integer NOT NULL,
	"gateway" text,
	"dns" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"pool_start" text,
	"pool_end" text,
	"vlan" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "allocations" ADD CONSTRAINT "allocations_network_networks_name_fk" FOREIGN KEY ("network") REFERENCES "public"."networks"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "allocations" ADD CONSTRAINT "allocations_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "allocations_address_uq" ON "allocations" USING btree ("network","address");--> statement-breakpoint
CREATE UNIQUE INDEX "allocations_node_iface_uq" ON "allocations" USING btree ("network","node_uuid","interface");--> statement-breakpoint
CREATE UNIQUE INDEX "allocations_mac_uq" ON "allocations" USING btree ("network","mac") WHERE mac is not null and node_uuid is null;--> statement-breakpoint
CREATE INDEX "allocations_node_idx" ON "allocations" USING btree ("node_uuid");