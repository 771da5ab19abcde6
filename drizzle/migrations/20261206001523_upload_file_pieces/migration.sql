CREATE TABLE "upload_file_pieces" (
	"upload_file_id" uuid,
	"piece" integer,
	"content" bytea NOT NULL,
	CONSTRAINT "upload_file_pieces_pkey" PRIMARY KEY("upload_file_id","piece")
);
--> statement-breakpoint
-- Uploads stored before this migration become one piece each.
INSERT INTO "upload_file_pieces" ("upload_file_id", "piece", "content") SELECT "id", 0, "content" FROM "upload_files";--> statement-breakpoint
ALTER TABLE "upload_files" DROP COLUMN "content";--> statement-breakpoint
ALTER TABLE "upload_file_pieces" ADD CONSTRAINT "upload_file_pieces_upload_file_id_upload_files_id_fkey" FOREIGN KEY ("upload_file_id") REFERENCES "upload_files"("id") ON DELETE CASCADE;