CREATE TABLE "ui_sessions" (
	"id_hash" text PRIMARY KEY NOT NULL,
	"principal_name" text NOT NULL,
	"role" text NOT NULL,
	"credential_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "ui_sessions_expires_idx" ON "ui_sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "ui_sessions_credential_idx" ON "ui_sessions" USING btree ("credential_hash","created_at");