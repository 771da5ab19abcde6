ALTER TABLE "import_rows" DROP CONSTRAINT "import_rows_session_id_import_sessions_id_fkey";--> statement-breakpoint
ALTER TABLE "import_row_previews" DROP CONSTRAINT "import_row_previews_session_id_import_sessions_id_fkey";--> statement-breakpoint
-- Instead of the keys' ON DELETE CASCADE: a session's staged rows and previews go with it
-- (a key checked every row inserted; see drizzle/tables.ts).
CREATE FUNCTION "import_sessions_delete_rows"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "import_row_previews" WHERE "session_id" = OLD."id";
  DELETE FROM "import_rows" WHERE "session_id" = OLD."id";
  RETURN OLD;
END
$$;--> statement-breakpoint
CREATE TRIGGER "import_sessions_delete_rows" AFTER DELETE ON "import_sessions"
  FOR EACH ROW EXECUTE FUNCTION "import_sessions_delete_rows"();
