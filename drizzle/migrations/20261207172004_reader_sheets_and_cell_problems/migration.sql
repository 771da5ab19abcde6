ALTER TABLE "import_rows" ADD COLUMN "problems" jsonb;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "requested_sheet" text;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "sheets" jsonb DEFAULT '[]' NOT NULL;