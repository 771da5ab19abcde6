-- The reference check of users (see 20261206144937_users_references_by_statement), with the
-- join of an update's old and new rows planned for each statement.
CREATE OR REPLACE FUNCTION "users_check_references"() RETURNS trigger LANGUAGE plpgsql AS $$
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
    -- Planned for each statement (EXECUTE), with the row counts of this statement's
    -- transition tables: a plan cached from a statement that updated a handful of users
    -- joined them by nested loop, and archiving 10,000 users took 24 s in this join alone.
    EXECUTE 'SELECT array_agg(DISTINCT w."company_id") FILTER (WHERE w."company_id" IS DISTINCT FROM p."company_id"),
           array_agg(DISTINCT w."training_group_id") FILTER (
             WHERE w."training_group_id" IS NOT NULL
               AND w."training_group_id" IS DISTINCT FROM p."training_group_id")
      FROM written_users w JOIN previous_users p ON p."id" = w."id"'
      INTO company_ids, group_ids;
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
$$;
