export * from './errors.ts';
export * from './events.ts';
export * from './lifecycle.ts';
export * from './pool-view.ts';
export * from './duration.ts';
export * from './intent.ts';
