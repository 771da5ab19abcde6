CREATE TYPE "import_mode" AS ENUM('ADD_AND_UPDATE', 'SYNC');--> statement-breakpoint
CREATE TYPE "user_status" AS ENUM('ACTIVE', 'ARCHIVED');--> statement-breakpoint
ALTER TYPE "import_stage" ADD VALUE 'REVERTED';--> statement-breakpoint
ALTER TYPE "import_step" ADD VALUE 'REVERT';--> statement-breakpoint
CREATE TABLE "import_user_changes" (
	"session_id" uuid,
	"user_id" uuid,
	"action" text NOT NULL,
	"before" jsonb,
	"after" jsonb,
	"outcome" text,
	CONSTRAINT "import_user_changes_pkey" PRIMARY KEY("session_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "mode" "import_mode" DEFAULT 'ADD_AND_UPDATE'::"import_mode" NOT NULL;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "archive_acknowledged" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "committed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "revert_force" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD COLUMN "revert_result" jsonb;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "status" "user_status" DEFAULT 'ACTIVE'::"user_status" NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "archived_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "import_user_changes" ADD CONSTRAINT "import_user_changes_session_id_import_sessions_id_fkey" FOREIGN KEY ("session_id") REFERENCES "import_sessions"("id") ON DELETE CASCADE;