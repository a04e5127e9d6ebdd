-- What a keyword search reads besides the blocks (src/store/pg/blocks.rs,
-- `ranked_with`): the principal's access sets, the question's document
-- frequencies, the field lengths, the retired chunks, the compaction's
-- generation, the chunks of the documents a metadata filter names,
-- and the delta (postings of chunks above upto, and moved ones, of the
-- principal's sets or, with p_exclude, of the others) as parallel arrays,
-- aggregated in one pass so that they stay aligned. One row, one statement,
-- one snapshot.
--
-- A function so that its plan is made once per connection: the shape does
-- not depend on the parameters (index lookups per question word), but
-- connections plan every statement for its parameters
-- (plan_cache_mode = force_custom_plan, src/store/pg/pool.rs), which cost
-- this statement 0.5 ms of a 0.6 ms read; planned once it costs 0.3 ms.
-- Runs as its caller (the owner: it returns ids and counts, never text).
CREATE OR REPLACE FUNCTION hort_keyword_read(
    p_teams text[], p_clearance int, p_fields int2[], p_terms text[],
    p_exclude bool, p_docs bigint[])
RETURNS TABLE (sets int[], dfs bigint[], fields int2[], tokens bigint[], n bigint,
               dead bigint[], generation bigint, doc_chunks bigint[],
               d_field int2[], d_term text[], d_chunk bigint[], d_tf int[], d_len int[])
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
RETURN QUERY
WITH v AS (SELECT ARRAY(SELECT a.id FROM access_sets a
                        WHERE a.teams && p_teams AND a.classification <= p_clearance) AS sets,
                  s.upto, s.generation
           FROM term_block_state s),
     q AS (SELECT DISTINCT u.field, u.term FROM unnest(p_fields, p_terms) u(field, term)),
     d AS (SELECT p.field, p.term, p.chunk_id, p.tf, p.len
           FROM q CROSS JOIN v CROSS JOIN LATERAL (
               SELECT c.field, c.term, c.chunk_id, c.tf, c.len, c.acl FROM chunk_terms c
               WHERE c.field = q.field AND c.term = q.term AND c.chunk_id > v.upto
               UNION ALL
               SELECT c.field, c.term, c.chunk_id, c.tf, c.len, c.acl FROM chunk_terms c
               WHERE c.field = q.field AND c.term = q.term AND c.moved
                 AND c.chunk_id <= v.upto) p
           WHERE (p.acl = ANY(v.sets)) <> p_exclude)
SELECT v.sets,
       ARRAY(SELECT coalesce(f.df, 0)::bigint
             FROM unnest(p_fields, p_terms) WITH ORDINALITY o(field, term, i)
             LEFT JOIN term_df f ON f.field = o.field AND f.term = o.term
             ORDER BY o.i),
       ARRAY(SELECT l.field FROM field_lengths l ORDER BY l.field),
       ARRAY(SELECT l.tokens::bigint FROM field_lengths l ORDER BY l.field),
       (SELECT greatest(sum(l.chunks) FILTER (WHERE l.field <> 2), 1) FROM field_lengths l)::bigint,
       ARRAY(SELECT b.chunk_id FROM term_block_dead b),
       v.generation,
       CASE WHEN p_docs IS NULL THEN NULL
            ELSE ARRAY(SELECT k.id FROM chunks k WHERE k.doc_id = ANY(p_docs)) END,
       coalesce(x.f, '{}'), coalesce(x.t, '{}'), coalesce(x.c, '{}'),
       coalesce(x.tf, '{}'), coalesce(x.l, '{}')
FROM v CROSS JOIN LATERAL (
    SELECT array_agg(d.field) AS f, array_agg(d.term) AS t, array_agg(d.chunk_id) AS c,
           array_agg(d.tf) AS tf, array_agg(d.len) AS l
    FROM d) x;
END
$fn$;
