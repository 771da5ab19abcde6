ALTER TABLE "import_rows" ADD COLUMN "email_key" text;--> statement-breakpoint
ALTER TABLE "import_rows" ADD COLUMN "reference_key" text;--> statement-breakpoint
CREATE INDEX "import_rows_email_key_idx" ON "import_rows" ("session_id","email_key","row_number") WHERE "email_key" is not null;--> statement-breakpoint
CREATE INDEX "import_rows_reference_key_idx" ON "import_rows" ("session_id","reference_key","row_number") WHERE "reference_key" is not null;