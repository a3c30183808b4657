export { PoolRunner, type PoolRunnerOptions } from './pool-runner.ts';
