-- Vectors kept in the row, not out of line: a 384-d vector (1.5 kB) with a
-- chunk's text passes PostgreSQL's 2 kB threshold and was moved to the
-- TOAST table, so scoring visible chunks exactly read a second table per
-- row (6,050 chunks: 24 ms; inline 7 ms; `hort bench backends`). MAIN, not
-- PLAIN: a vector too large for a page (several thousand dimensions) may
-- still go out of line rather than fail the insert. Rows written from now
-- on keep their vector inline; rows already stored move when the table is
-- rewritten (`VACUUM FULL chunks`, see docs/postgres.md).
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN;
