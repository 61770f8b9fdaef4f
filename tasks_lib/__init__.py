"""The clawback domain: plain Python, no Prefect.

Modules are named after what they hold (registry, manifest, gitrepo, deps, ...). Flows in
``flows/`` compose them; the CLI in ``clawback/`` parses, calls and renders.
"""
