CREATE TABLE "replicas" (
	"id" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"url" text,
	"version" text NOT NULL,
	"schema_version" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"last_seen" timestamp with time zone NOT NULL,
	"leader" boolean DEFAULT false NOT NULL
);
