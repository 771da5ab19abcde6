-- UUIDs of version 7 (RFC 9562): the first 48 bits are the time in milliseconds, the rest
-- random, so that the users a commit inserts go to the end of the indexes on their id instead
-- of all over them. Postgres 18 has uuidv7(); this is for 15 to 17 and PGlite.
CREATE FUNCTION "muster_uuid_v7"() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
        placing substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;
