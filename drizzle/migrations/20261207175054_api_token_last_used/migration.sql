ALTER TABLE "api_tokens" ADD COLUMN "last_used_at" timestamp with time zone;--> statement-breakpoint
-- Recording when a token was last used is no change to what it may do: it must not make every
-- server process drop its token cache, so only changes of these columns (or a delete) notify.
DROP TRIGGER "api_tokens_notify_change" ON "api_tokens";--> statement-breakpoint
CREATE TRIGGER "api_tokens_notify_change"
  AFTER UPDATE OF "company_id", "role", "token_hash", "revoked_at" OR DELETE ON "api_tokens"
  FOR EACH ROW EXECUTE FUNCTION "api_tokens_notify_change"();
