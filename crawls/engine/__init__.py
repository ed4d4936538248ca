"""The crawl engine: claim → fetch → extract → store → publish. Pure of Django views and of
crawls.services (which enqueue tasks that run the engine): it records progress through
crawls.events and crawls.engine.store, which sit below services."""
