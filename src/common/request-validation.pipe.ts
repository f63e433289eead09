import type { ArgumentMetadata } from '@nestjs/common';
import { ZodValidationException, ZodValidationPipe } from 'nestjs-zod';
import { DomainError, type FieldError } from './domain-error';

type Location = ArgumentMetadata['type'];

/** What an unknown key is, by where it was sent. */
const UNKNOWN_KEY: Record<Location, string> = {
  query: 'is not a query parameter of this route',
  body: 'is not a field of this body',
  param: 'is not a path parameter of this route',
  custom: 'is not known',
};

/**
 * nestjs-zod's validation, with field errors that say where the input was: an unknown key is named, as a query
 * parameter or a body field (zod reports it at the object itself, which read as `(body)` even in a query).
 */
export class RequestValidationPipe extends ZodValidationPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): unknown {
    try {
      return super.transform(value, metadata);
    } catch (error) {
      if (!(error instanceof ZodValidationException)) throw error;
      throw new DomainError(
        'validation_error',
        'the request is not valid',
        fieldErrorsOf(error.getZodError(), metadata.type),
      );
    }
  }
}

interface Issue {
  code?: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** One entry per problem: the dotted path of the field, or `(query)` / `(body)` for the whole of it. */
export function fieldErrorsOf(error: unknown, location: Location): FieldError[] {
  const issues = (error as { issues?: Issue[] }).issues ?? [];
  return issues.flatMap((issue) => {
    const at = issue.path.map(String);
    if (issue.code === 'unrecognized_keys' && issue.keys?.length) {
      return issue.keys.map((key) => ({ field: [...at, key].join('.'), message: UNKNOWN_KEY[location] }));
    }
    return [{ field: at.join('.') || `(${location})`, message: issue.message }];
  });
}
