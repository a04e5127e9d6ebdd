-- Postings by access set: when a principal may see few chunks, its
-- postings of a term are read directly (exactly, all of them) instead of
-- walking the term's whole list to find the visible ones.
CREATE INDEX IF NOT EXISTS chunk_terms_access ON chunk_terms (acl, field, term) INCLUDE (chunk_id, tf, len);
