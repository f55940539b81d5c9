"""``python -m companion fetch`` provisions the offline resources; ``info`` says what would be used."""

from __future__ import annotations

import argparse
import sys

from . import resources, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion", description=__doc__)
    parser.add_argument("command", choices=["fetch", "info"])
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for name, where in resources.fetch().items():
                resources.say(f"{name}: ready at {where}")
        else:
            resources.say(f"profile={settings.profile().name} source={settings.source()}"
                          f" cache={settings.cache_dir()} hub={settings.hub_endpoint()}")
            for name, provider in resources.offline_providers().items():
                resources.say(f"{name}: offline from {provider.describe()}")
    except (resources.ResourceError, settings.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
