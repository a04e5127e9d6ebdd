-- An access set's version (migration 13) tells a node that what it keeps of
-- the set's chunks (their vectors, texts, rules and verdicts) is still what
-- the database holds. hort's writer renews it before each commit, in id
-- order (writers of the same sets never wait in a cycle). A write made by
-- anyone else -- an operator's UPDATE, a restore script, a DELETE by hand --
-- renews it here, once per statement, for every set whose chunks it
-- inserted, changed, moved or removed. hort's writer marks its session
-- (`SET hort.writer = on`) and is skipped: its own renewal is the one that
-- keeps the lock order.
CREATE FUNCTION hort_renew_set_versions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('hort.writer', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE access_sets SET version = floor(random() * 9.2e18)::bigint
        WHERE id IN (SELECT acl FROM hort_new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE access_sets SET version = floor(random() * 9.2e18)::bigint
        WHERE id IN (SELECT acl FROM hort_old_rows);
    ELSE
        UPDATE access_sets SET version = floor(random() * 9.2e18)::bigint
        WHERE id IN (SELECT acl FROM hort_old_rows UNION SELECT acl FROM hort_new_rows);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER chunks_inserted_renew_versions AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS hort_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hort_renew_set_versions();
CREATE TRIGGER chunks_updated_renew_versions AFTER UPDATE ON chunks
    REFERENCING OLD TABLE AS hort_old_rows NEW TABLE AS hort_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hort_renew_set_versions();
CREATE TRIGGER chunks_deleted_renew_versions AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS hort_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hort_renew_set_versions();

-- A set whose teams or classification are changed in place admits other
-- principals: its chunks are no longer what nodes kept under it.
CREATE FUNCTION hort_renew_changed_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.teams IS DISTINCT FROM OLD.teams
       OR NEW.classification IS DISTINCT FROM OLD.classification THEN
        NEW.version := floor(random() * 9.2e18)::bigint;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER access_sets_changed_renew_version BEFORE UPDATE ON access_sets
    FOR EACH ROW EXECUTE FUNCTION hort_renew_changed_set();
