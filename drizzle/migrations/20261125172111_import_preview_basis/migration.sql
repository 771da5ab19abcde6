ALTER TABLE "companies" ADD COLUMN "users_version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "preview_basis" jsonb;