CREATE TABLE "import_row_duplicates" (
	"session_id" uuid,
	"row_number" integer,
	"first_email_row" integer,
	"first_reference_row" integer,
	CONSTRAINT "import_row_duplicates_pkey" PRIMARY KEY("session_id","row_number")
);
--> statement-breakpoint
ALTER TABLE "import_row_duplicates" ADD CONSTRAINT "import_row_duplicates_session_id_import_sessions_id_fkey" FOREIGN KEY ("session_id") REFERENCES "import_sessions"("id") ON DELETE CASCADE;