import js from "@eslint/js";
import importX, { createNodeResolver } from "eslint-plugin-import-x";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "**/dist/**",
      "**/node_modules/**",
      "docs/**",
      ".lab/**",
      "**/*.generated.ts",
      // deliberate offences, linted by test/lint.test.ts
      "test/fixtures/lint/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "import-x": importX },
    settings: {
      // Which files import-x parses to follow imports (no-cycle needs to read them).
      "import-x/extensions": [".ts", ".js", ".mjs"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      // Sources import "./x.js" for "./x.ts" (NodeNext); resolve it the way tsc does.
      "import-x/resolver-next": [
        createNodeResolver({
          extensions: [".ts", ".js", ".mjs", ".json"],
          extensionAlias: { ".js": [".ts", ".js"] },
          conditionNames: ["@ovntap/source", "types", "import", "node", "default"],
        }),
      ],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "import-x/no-cycle": ["error", { maxDepth: Infinity, ignoreExternal: true }],
      "no-console": "error",
    },
  },
  {
    // Plain-JS entry points run before dependencies exist (bootstrap) and the CLI-facing scripts.
    files: ["**/*.mjs", "**/*.js"],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, "no-console": "off" },
  },
  {
    // Tests may print and may leave a promise to the runner.
    files: ["**/*.test.ts"],
    rules: { "no-console": "off" },
  },
);
