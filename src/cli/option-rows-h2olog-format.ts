/** The option table's rows of h2olog's own output on stdout (--format h2olog), in the order of --help. */
export const H2OLOG_FORMAT_OPTIONS = {} as const;
