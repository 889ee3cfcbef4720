CREATE TABLE "image_channel_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"channel" text NOT NULL,
	"action" text NOT NULL,
	"from_image_id" bigint,
	"from_version" text,
	"from_digest" text,
	"to_image_id" bigint NOT NULL,
	"to_version" text NOT NULL,
	"to_digest" text NOT NULL,
	"actor" text NOT NULL,
	"reason" text,
	"data" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "image_channels" (
	"name" text NOT NULL,
	"channel" text NOT NULL,
	"image_id" bigint NOT NULL,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "image_channels_name_channel_pk" PRIMARY KEY("name","channel")
);
--> statement-breakpoint
CREATE TABLE "images" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"version" text NOT NULL,
	"arch" text NOT NULL,
	"kernel_digest" text NOT NULL,
	"kernel_size" bigint NOT NULL,
	"initrd_digest" text NOT NULL,
	"initrd_size" bigint NOT NULL,
	"cmdline" text DEFAULT '' NOT NULL,
	"size" bigint NOT NULL,
	"manifest_digest" text NOT NULL,
	"notes" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "image_channels" ADD CONSTRAINT "image_channels_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "image_channel_history_idx" ON "image_channel_history" USING btree ("name","channel","id");--> statement-breakpoint
CREATE UNIQUE INDEX "images_name_version_uq" ON "images" USING btree ("name","version");--> statement-breakpoint
CREATE INDEX "images_manifest_idx" ON "images" USING btree ("manifest_digest");--> statement-breakpoint
CREATE INDEX "images_digests_idx" ON "images" USING btree ("kernel_digest","initrd_digest");