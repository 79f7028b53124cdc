// Types for the validators that scripts/build.mjs generates from oci-spec/schemas.
import type { ErrorObject } from 'ajv';

interface Validator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

export const validateConfig: Validator;
export const validateState: Validator;
export const validateFeatures: Validator;
