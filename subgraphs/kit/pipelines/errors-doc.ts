/**
 * The pipelines' error codes as subgraphs/README.md shows them: generated from runner.ts's catalogue
 * by `npm run docs:errors` (a test fails while the README is out of date).
 */
import type { GeneratedSection } from '../../../policy/errors-doc.js';
import { PIPELINE_ERROR_STATUS, PIPELINE_ERRORS, type PipelineErrorCode } from './runner.js';

export const PIPELINE_ERROR_SECTION: GeneratedSection = {
  start: '<!-- pipeline-errors:start (generated from subgraphs/kit/pipelines/runner.ts by `npm run docs:errors`) -->',
  end: '<!-- pipeline-errors:end -->',
  render: () =>
    [
      '| code | HTTP | `npm run pipelines` exit | meaning |',
      '| --- | --- | --- | --- |',
      ...Object.entries(PIPELINE_ERRORS).map(([code, meaning]) => {
        const status = PIPELINE_ERROR_STATUS[code as PipelineErrorCode];
        return `| \`${code}\` | ${status} | ${status === 409 ? 1 : 2} | ${meaning} |`;
      }),
    ].join('\n'),
};
