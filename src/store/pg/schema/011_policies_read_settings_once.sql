-- Row-level security read the principal's teams and clearance from the
-- transaction's settings once per row: the policies called hort_teams() and
-- hort_clearance(), which PostgreSQL inlines, so every row a search visits
-- parsed the teams setting into an array again (about 1 ms of a 6,000-row
-- exact scan). As scalar subqueries they are computed once per statement (an
-- init plan) and compared as parameters; the rule is the same.
ALTER POLICY hort_acl ON documents
    USING (teams && (SELECT hort_teams()) AND classification <= (SELECT hort_clearance()));
ALTER POLICY hort_acl ON pages
    USING (teams && (SELECT hort_teams()) AND classification <= (SELECT hort_clearance()));
ALTER POLICY hort_acl ON chunks
    USING (teams && (SELECT hort_teams()) AND classification <= (SELECT hort_clearance()));
