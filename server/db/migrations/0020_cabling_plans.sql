CREATE TABLE "cabling_plans" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"key_norm" text NOT NULL,
	"policy" text NOT NULL,
	"links" jsonb NOT NULL,
	"source" text,
	"loaded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"loaded_by" text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "cabling_plans_key_uq" ON "cabling_plans" USING btree ("scope","key_norm");