CREATE TABLE "console_chunks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" text NOT NULL,
	"boot_at" timestamp with time zone NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"bytes" integer NOT NULL,
	"data" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "console_chunks" ADD CONSTRAINT "console_chunks_node_uuid_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "console_chunks_node_idx" ON "console_chunks" USING btree ("node_uuid","id");--> statement-breakpoint
CREATE INDEX "console_chunks_at_idx" ON "console_chunks" USING btree ("at");