"""Scheduled maintenance (APScheduler 3.x): cache eviction, engine probes, backups, stuck-job recovery.

The jobs themselves arrive with the scheduler issue; in embedded mode they will run in the web process,
scaled out in exactly one ``python -m scheduler`` process.
"""
