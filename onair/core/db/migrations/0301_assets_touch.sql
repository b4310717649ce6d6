-- Feed ETags and caches key on assets.updated_at; make sure every change moves it, even from writers
-- that forget to set it (a writer that sets it explicitly keeps its value).
CREATE FUNCTION onair_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER assets_touch_updated_at BEFORE UPDATE ON assets
    FOR EACH ROW EXECUTE FUNCTION onair_touch_updated_at();
