/**
 * Tessera's version, as `deno.json` states it (a test keeps the two equal): reports and saved
 * files say which version produced them, also when the code is imported from a URL.
 * @module
 */

/**
 * The version string.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(`Tessera ${VERSION}`);
 * ```
 */
export const VERSION = "0.1.0";
