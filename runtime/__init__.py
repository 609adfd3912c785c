"""The ef speech functions runtime: settings, function registry, app, broker, worker, CLI."""
