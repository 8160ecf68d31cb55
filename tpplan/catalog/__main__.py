"""python -m tpplan.catalog: rewrite the compiled bundled catalog (tpplan/_bundled_catalog.json)."""

from tpplan.catalog.load import main

if __name__ == "__main__":
    main()
