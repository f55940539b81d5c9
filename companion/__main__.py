"""``python -m companion fetch`` provisions the offline resources; ``info`` says what would be used.

``fetch --verify`` also hashes every provisioned file; ``fetch --repair`` provisions again the
resources whose files changed after they were written.
"""

from __future__ import annotations

import argparse
import sys

from . import provision, resources, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion", description=__doc__)
    parser.add_argument("command", choices=["fetch", "info"])
    parser.add_argument("--verify", action="store_true", help="fetch: check the sha256 of every provisioned file")
    parser.add_argument("--repair", action="store_true", help="fetch: provision again what changed")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for name, where in resources.fetch(verify=args.verify, repair=args.repair).items():
                resources.say(f"{name}: ready at {where}")
        else:
            used, free = provision.cache_usage()
            resources.say(f"profile={settings.profile().name} source={settings.source()} hub={settings.hub_endpoint()}")
            resources.say(f"cache={settings.cache_dir()} ({used / 1e9:.2f} GB used, {free / 1e9:.1f} GB free)")
            for name, provider in resources.offline_providers().items():
                resources.say(f"{name}: offline from {provider.describe()}")
    except (resources.ResourceError, settings.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
