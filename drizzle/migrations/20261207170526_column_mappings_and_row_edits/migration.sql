CREATE TYPE "import_edit_kind" AS ENUM('UPDATE_ROWS', 'REVERT_ROWS', 'REPLACE_IN_COLUMN', 'REPLACE_FILE');--> statement-breakpoint
CREATE TABLE "column_mappings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"header" text NOT NULL,
	"header_key" text NOT NULL,
	"field_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "column_mappings_company_header_unique" UNIQUE("company_id","header_key")
);
--> statement-breakpoint
CREATE TABLE "import_session_edits" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"session_id" uuid NOT NULL,
	"token_id" uuid,
	"kind" "import_edit_kind" NOT NULL,
	"row_count" integer NOT NULL,
	"cell_count" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "import_rows" ADD COLUMN "original_cells" jsonb;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "column_decisions" jsonb;--> statement-breakpoint
CREATE INDEX "import_session_edits_session_idx" ON "import_session_edits" ("session_id","created_at");--> statement-breakpoint
ALTER TABLE "column_mappings" ADD CONSTRAINT "column_mappings_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "import_session_edits" ADD CONSTRAINT "import_session_edits_session_id_import_sessions_id_fkey" FOREIGN KEY ("session_id") REFERENCES "import_sessions"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "import_session_edits" ADD CONSTRAINT "import_session_edits_token_id_api_tokens_id_fkey" FOREIGN KEY ("token_id") REFERENCES "api_tokens"("id") ON DELETE SET NULL;