CREATE TABLE "upload_parts" (
	"upload_id" bigint NOT NULL,
	"part_number" integer NOT NULL,
	"offset" bigint NOT NULL,
	"size" bigint NOT NULL,
	"etag" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "upload_parts_upload_id_part_number_pk" PRIMARY KEY("upload_id","part_number")
);
--> statement-breakpoint
CREATE TABLE "uploads" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"digest" text NOT NULL,
	"total" bigint NOT NULL,
	"store" text NOT NULL,
	"store_upload_id" text NOT NULL,
	"offset" bigint DEFAULT 0 NOT NULL,
	"next_part" integer DEFAULT 1 NOT NULL,
	"lease_token" text,
	"lease_until" timestamp with time zone,
	"hash_state" text,
	"hash_format" text NOT NULL,
	"state" text DEFAULT 'open' NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "upload_parts" ADD CONSTRAINT "upload_parts_upload_id_uploads_id_fk" FOREIGN KEY ("upload_id") REFERENCES "public"."uploads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "upload_parts_offset_uq" ON "upload_parts" USING btree ("upload_id","offset");--> statement-breakpoint
CREATE UNIQUE INDEX "uploads_digest_uq" ON "uploads" USING btree ("digest");--> statement-breakpoint
CREATE INDEX "uploads_updated_idx" ON "uploads" USING btree ("updated_at");