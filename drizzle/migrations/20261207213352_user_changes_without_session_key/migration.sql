ALTER TABLE "import_user_changes" DROP CONSTRAINT "import_user_changes_session_id_import_sessions_id_fkey";--> statement-breakpoint
-- Instead of the key's ON DELETE CASCADE: a session's user records go with it, as its staged
-- rows do (see drizzle/tables.ts).
CREATE OR REPLACE FUNCTION "import_sessions_delete_rows"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "import_row_previews" WHERE "session_id" = OLD."id";
  DELETE FROM "import_rows" WHERE "session_id" = OLD."id";
  DELETE FROM "import_user_changes" WHERE "session_id" = OLD."id";
  RETURN OLD;
END
$$;
