CREATE TABLE "import_row_previews" (
	"session_id" uuid,
	"row_number" integer,
	"errors" jsonb,
	"action" text NOT NULL,
	"user_id" uuid,
	"matched_rule_id" uuid,
	"training_group_id" uuid,
	CONSTRAINT "import_row_previews_pkey" PRIMARY KEY("session_id","row_number")
);
--> statement-breakpoint
-- Previews computed before this migration move to the new table (a row validation had not
-- reached yet has none: the validation step recomputes them when it runs again).
INSERT INTO "import_row_previews" ("session_id", "row_number", "errors", "action", "user_id", "matched_rule_id", "training_group_id") SELECT "session_id", "row_number", "errors", "action", "user_id", "matched_rule_id", "training_group_id" FROM "import_rows" WHERE "action" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "import_rows" DROP COLUMN "errors";--> statement-breakpoint
ALTER TABLE "import_rows" DROP COLUMN "action";--> statement-breakpoint
ALTER TABLE "import_rows" DROP COLUMN "training_group_id";--> statement-breakpoint
ALTER TABLE "import_rows" DROP COLUMN "matched_rule_id";--> statement-breakpoint
ALTER TABLE "import_rows" DROP COLUMN "user_id";--> statement-breakpoint
ALTER TABLE "import_row_previews" ADD CONSTRAINT "import_row_previews_session_id_import_sessions_id_fkey" FOREIGN KEY ("session_id") REFERENCES "import_sessions"("id") ON DELETE CASCADE;