/** Types of node-version.js (plain JavaScript: it runs before tsx's loader is registered). */
export declare const MINIMUM_NODE: string;
export declare function nodeTooOld(version: string): string | null;
