CREATE TYPE "import_stage" AS ENUM('UPLOAD', 'CUSTOM_FIELDS', 'VALIDATION', 'REVIEW', 'GROUP_ASSIGNMENT', 'COMPLETED', 'CANCELLED', 'FAILED');--> statement-breakpoint
CREATE TYPE "rule_operator" AS ENUM('EQUALS', 'NOT_EQUALS', 'CONTAINS', 'STARTS_WITH', 'ENDS_WITH');--> statement-breakpoint
CREATE TYPE "token_role" AS ENUM('ADMIN', 'VIEWER');--> statement-breakpoint
CREATE TABLE "api_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"role" "token_role" NOT NULL,
	"token_hash" text NOT NULL UNIQUE,
	"label" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "companies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "custom_fields" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"key" text NOT NULL,
	"label" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "custom_fields_company_key_unique" UNIQUE("company_id","key")
);
--> statement-breakpoint
CREATE TABLE "distribution_rules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"field_key" text NOT NULL,
	"operator" "rule_operator" NOT NULL,
	"value" text NOT NULL,
	"training_group_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "distribution_rules_company_position_unique" UNIQUE("company_id","position")
);
--> statement-breakpoint
CREATE TABLE "import_rows" (
	"session_id" uuid,
	"row_number" integer,
	"cells" jsonb NOT NULL,
	"errors" jsonb,
	"action" text,
	"training_group_id" uuid,
	"matched_rule_id" uuid,
	"user_id" uuid,
	CONSTRAINT "import_rows_pkey" PRIMARY KEY("session_id","row_number")
);
--> statement-breakpoint
CREATE TABLE "import_sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"stage" "import_stage" DEFAULT 'UPLOAD'::"import_stage" NOT NULL,
	"busy" boolean DEFAULT true NOT NULL,
	"upload_file_id" uuid,
	"file_name" text NOT NULL,
	"file_size" bigint NOT NULL,
	"comment" text,
	"progress" jsonb,
	"columns" jsonb DEFAULT '[]' NOT NULL,
	"row_count" integer DEFAULT 0 NOT NULL,
	"valid_row_count" integer DEFAULT 0 NOT NULL,
	"invalid_row_count" integer DEFAULT 0 NOT NULL,
	"result" jsonb,
	"failure" jsonb,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"attempt" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mail_outbox" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"recipients" text[] NOT NULL,
	"subject" text NOT NULL,
	"delivered_to" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "server_secrets" (
	"name" text PRIMARY KEY,
	"value" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "training_groups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "upload_files" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"file_name" text NOT NULL,
	"size" bigint NOT NULL,
	"content" bytea NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"company_id" uuid NOT NULL,
	"email" text NOT NULL,
	"user_name" text NOT NULL,
	"reference" text NOT NULL,
	"custom_values" jsonb DEFAULT '{}' NOT NULL,
	"training_group_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_company_reference_unique" UNIQUE("company_id","reference")
);
--> statement-breakpoint
CREATE INDEX "api_tokens_company_idx" ON "api_tokens" ("company_id");--> statement-breakpoint
CREATE UNIQUE INDEX "custom_fields_company_label_unique" ON "custom_fields" ("company_id",lower("label"));--> statement-breakpoint
CREATE INDEX "import_sessions_company_created_idx" ON "import_sessions" ("company_id","created_at","id");--> statement-breakpoint
CREATE INDEX "import_sessions_work_idx" ON "import_sessions" ("busy","lease_expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "training_groups_company_name_unique" ON "training_groups" ("company_id",lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX "users_company_email_unique" ON "users" ("company_id",lower("email"));--> statement-breakpoint
CREATE INDEX "users_company_id_idx" ON "users" ("company_id","id");--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "custom_fields" ADD CONSTRAINT "custom_fields_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "distribution_rules" ADD CONSTRAINT "distribution_rules_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "distribution_rules" ADD CONSTRAINT "distribution_rules_training_group_id_training_groups_id_fkey" FOREIGN KEY ("training_group_id") REFERENCES "training_groups"("id") ON DELETE RESTRICT;--> statement-breakpoint
ALTER TABLE "import_rows" ADD CONSTRAINT "import_rows_session_id_import_sessions_id_fkey" FOREIGN KEY ("session_id") REFERENCES "import_sessions"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD CONSTRAINT "import_sessions_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "import_sessions" ADD CONSTRAINT "import_sessions_upload_file_id_upload_files_id_fkey" FOREIGN KEY ("upload_file_id") REFERENCES "upload_files"("id") ON DELETE SET NULL;--> statement-breakpoint
ALTER TABLE "mail_outbox" ADD CONSTRAINT "mail_outbox_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "training_groups" ADD CONSTRAINT "training_groups_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "upload_files" ADD CONSTRAINT "upload_files_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_company_id_companies_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies"("id") ON DELETE CASCADE;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_training_group_id_training_groups_id_fkey" FOREIGN KEY ("training_group_id") REFERENCES "training_groups"("id") ON DELETE SET NULL;