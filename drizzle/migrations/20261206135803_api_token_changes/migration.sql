-- Every server process caches valid tokens for a few seconds (server/token-cache.ts): any change
-- to a token row (revoked, role changed, deleted with its company) is notified to all of them,
-- whoever made it (the admin CLI, another process, SQL by hand), so they drop what they cached.
CREATE FUNCTION "api_tokens_notify_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('muster_api_token_changed', OLD."id"::text);
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "api_tokens_notify_change" AFTER UPDATE OR DELETE ON "api_tokens"
  FOR EACH ROW EXECUTE FUNCTION "api_tokens_notify_change"();
