ALTER TABLE "users" DROP CONSTRAINT "users_company_id_companies_id_fkey";--> statement-breakpoint
ALTER TABLE "users" DROP CONSTRAINT "users_training_group_id_training_groups_id_fkey";--> statement-breakpoint
-- The two keys above checked every user row written: a lookup and a lock of its company and
-- of its training group, about 2 s of a 5 s commit of 100k new users (docs/decisions.md).
-- The same rule, checked once a statement over the rows it wrote (transition tables): as a
-- key does, only references that are new (every row inserted; on update, the rows whose
-- reference changed); their rows are locked FOR KEY SHARE, as a key's check locks them, so
-- that they cannot be deleted until this transaction ends, and then each must exist. A
-- violation fails the statement with the keys' error code (23503).
CREATE FUNCTION "users_check_references"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  company_ids uuid[];
  group_ids uuid[];
  missing uuid;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT w."company_id"),
           array_agg(DISTINCT w."training_group_id") FILTER (WHERE w."training_group_id" IS NOT NULL)
      INTO company_ids, group_ids
      FROM written_users w;
  ELSE
    SELECT array_agg(DISTINCT w."company_id") FILTER (WHERE w."company_id" IS DISTINCT FROM p."company_id"),
           array_agg(DISTINCT w."training_group_id") FILTER (
             WHERE w."training_group_id" IS NOT NULL
               AND w."training_group_id" IS DISTINCT FROM p."training_group_id")
      INTO company_ids, group_ids
      FROM written_users w JOIN previous_users p ON p."id" = w."id";
  END IF;
  IF company_ids IS NOT NULL THEN
    PERFORM 1 FROM "companies" c WHERE c."id" = ANY (company_ids) FOR KEY SHARE;
    SELECT wanted.id INTO missing FROM unnest(company_ids) AS wanted(id)
      WHERE NOT EXISTS (SELECT 1 FROM "companies" c WHERE c."id" = wanted.id) LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'insert or update on table "users" refers to a company that does not exist'
        USING ERRCODE = 'foreign_key_violation',
          DETAIL = format('Key (company_id)=(%s) is not present in table "companies".', missing);
    END IF;
  END IF;
  IF group_ids IS NOT NULL THEN
    PERFORM 1 FROM "training_groups" g WHERE g."id" = ANY (group_ids) FOR KEY SHARE;
    SELECT wanted.id INTO missing FROM unnest(group_ids) AS wanted(id)
      WHERE NOT EXISTS (SELECT 1 FROM "training_groups" g WHERE g."id" = wanted.id) LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'insert or update on table "users" refers to a training group that does not exist'
        USING ERRCODE = 'foreign_key_violation',
          DETAIL = format('Key (training_group_id)=(%s) is not present in table "training_groups".', missing);
    END IF;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
-- A trigger with transition tables has one event: one for inserts, one for updates (an
-- INSERT ... ON CONFLICT DO UPDATE fires both, each with its own rows).
CREATE TRIGGER "users_check_references_on_insert" AFTER INSERT ON "users"
  REFERENCING NEW TABLE AS written_users
  FOR EACH STATEMENT EXECUTE FUNCTION "users_check_references"();--> statement-breakpoint
CREATE TRIGGER "users_check_references_on_update" AFTER UPDATE ON "users"
  REFERENCING OLD TABLE AS previous_users NEW TABLE AS written_users
  FOR EACH STATEMENT EXECUTE FUNCTION "users_check_references"();--> statement-breakpoint
-- What the keys' ON DELETE did: a company's users go with it, a deleted group is unset.
CREATE FUNCTION "companies_delete_users"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "users" WHERE "company_id" = OLD."id";
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "companies_delete_users" AFTER DELETE ON "companies"
  FOR EACH ROW EXECUTE FUNCTION "companies_delete_users"();--> statement-breakpoint
CREATE FUNCTION "training_groups_unset_users"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "users" SET "training_group_id" = NULL WHERE "training_group_id" = OLD."id";
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "training_groups_unset_users" AFTER DELETE ON "training_groups"
  FOR EACH ROW EXECUTE FUNCTION "training_groups_unset_users"();
