"""One exception hierarchy for every S3 error, named after AWS's error codes.

Status and default message come from one table (AWS "Error responses" page), so a handler only
ever raises the class; rendering to XML happens in exactly one place (protocol.render).
"""

from __future__ import annotations

from typing import ClassVar


class S3Error(Exception):
    """Base of all errors that reach the client as S3 XML.

    Subclasses set ``code`` and ``status``; ``extra`` holds additional XML fields that AWS
    includes for some codes (BucketName, Key, ArgumentName, ...).
    """

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, **extra: str) -> None:
        self.message = message or self.default_message
        self.extra: dict[str, str] = {k: str(v) for k, v in extra.items()}
        self.headers: dict[str, str] = {}
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


_TABLE: list[tuple[str, int, str]] = [
    ("AccessDenied", 403, "Access Denied"),
    (
        "AccessForbidden",
        403,
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
        "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
        "whitelisted by the resource's CORS spec.",
    ),
    ("AuthorizationHeaderMalformed", 400, "The authorization header is malformed."),
    ("AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter."),
    ("BadDigest", 400, "The Content-MD5 you specified did not match what we received."),
    ("BadRequest", 400, "Bad Request"),
    ("BucketAlreadyExists", 409, "The requested bucket name is not available."),
    (
        "BucketAlreadyOwnedByYou",
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    ("BucketNotEmpty", 409, "The bucket you tried to delete is not empty."),
    ("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size."),
    ("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."),
    ("ExpiredToken", 400, "The provided token has expired."),
    ("IllegalLocationConstraintException", 400, "The specified location constraint is not valid."),
    (
        "IncompleteBody",
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    ("InsufficientStorage", 507, "There is not enough space on the server to store the object."),
    ("InternalError", 500, "We encountered an internal error. Please try again."),
    ("InvalidAccessKeyId", 403, "The AWS access key ID you provided does not exist in our records."),
    ("InvalidArgument", 400, "Invalid Argument"),
    ("InvalidBucketName", 400, "The specified bucket is not valid."),
    (
        "IllegalVersioningConfigurationException",
        400,
        "The versioning configuration specified in the request is invalid.",
    ),
    ("InvalidBucketState", 409, "The request is not valid with the current state of the bucket."),
    ("InvalidDigest", 400, "The Content-MD5 you specified is not valid."),
    ("InvalidEncryptionAlgorithmError", 400, "The encryption request that you specified is not valid."),
    ("InvalidLocationConstraint", 400, "The specified location constraint is not valid."),
    ("InvalidObjectState", 403, "The operation is not valid for the current state of the object."),
    ("RestoreAlreadyInProgress", 409, "Object restore is already in progress."),
    (
        "InvalidPart",
        400,
        "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
    ),
    (
        "InvalidPartOrder",
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    ),
    ("InvalidRange", 416, "The requested range is not satisfiable"),
    ("InvalidRequest", 400, "Invalid Request"),
    ("InvalidStorageClass", 400, "The storage class you specified is not valid."),
    ("InvalidTag", 400, "The tag provided was not a valid tag."),
    ("InvalidURI", 400, "Couldn't parse the specified URI."),
    ("KeyTooLongError", 400, "Your key is too long."),
    (
        "MalformedXML",
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    ),
    ("MalformedPolicy", 400, "Policy has invalid resource."),
    (
        "MalformedACLError",
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    ),
    ("NoSuchPublicAccessBlockConfiguration", 404, "The public access block configuration was not found"),
    (
        "UnresolvableGrantByEmailAddress",
        400,
        "The email address you provided does not match any account on record.",
    ),
    ("MaxMessageLengthExceeded", 400, "Your request was too big."),
    ("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."),
    ("MethodNotAllowed", 405, "The specified method is not allowed against this resource."),
    ("MissingContentLength", 411, "You must provide the Content-Length HTTP header."),
    ("MissingSecurityHeader", 400, "Your request is missing a required header."),
    ("NoSuchBucket", 404, "The specified bucket does not exist"),
    ("NoSuchKey", 404, "The specified key does not exist."),
    (
        "NoSuchUpload",
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    ),
    ("NoSuchVersion", 404, "The specified version does not exist."),
    ("NoSuchBucketPolicy", 404, "The bucket policy does not exist"),
    ("NoSuchTagSet", 404, "The TagSet does not exist"),
    ("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"),
    (
        "ServerSideEncryptionConfigurationNotFoundError",
        404,
        "The server side encryption configuration was not found",
    ),
    ("NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"),
    # Object Lock. NoSuchObjectLockConfiguration is 400 as MinIO and versitygw answer it (AWS's
    # error table does not list it); the bucket-level "not found" is a 404.
    ("ObjectLockConfigurationNotFoundError", 404, "Object Lock configuration does not exist for this bucket"),
    ("NoSuchObjectLockConfiguration", 400, "The specified object does not have a ObjectLock configuration"),
    ("NotImplemented", 501, "A header you provided implies functionality that is not implemented."),
    ("NotModified", 304, "Not Modified"),
    ("PreconditionFailed", 412, "At least one of the preconditions you specified did not hold."),
    (
        "RequestTimeTooSkewed",
        403,
        "The difference between the request time and the server's time is too large.",
    ),
    (
        "RequestTimeout",
        400,
        "Your socket connection to the server was not read from or written to within the timeout period.",
    ),
    ("ServiceUnavailable", 503, "Please reduce your request rate."),
    (
        "SignatureDoesNotMatch",
        403,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    ),
    ("SlowDown", 503, "Please reduce your request rate."),
    (
        "XAmzContentSHA256Mismatch",
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    ("InvalidChunkSizeError", 403, "Only the last chunk is allowed to have a size less than 8192 bytes"),
    # POST Object (browser-based uploads with a POST policy)
    (
        "InvalidPolicyDocument",
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    ("MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data."),
    ("IncorrectNumberOfFilesInPostRequest", 400, "POST requires exactly one file upload per request."),
    (
        "MaxPostPreDataLengthExceededError",
        400,
        "Your POST request fields preceding the upload file were too large.",
    ),
    ("MissingFields", 400, "Missing fields in request."),
    ("UnexpectedContent", 400, "This request does not support content."),
    ("InvalidObjectName", 400, "Object key is not valid."),
    # S3 Select ("Amazon S3 Select error codes" in the S3 API reference).
    ("CSVParsingError", 400, "Encountered an error parsing the CSV file. Check the file and try again."),
    (
        "CastFailed",
        400,
        "Attempt to convert from one data type to another using CAST failed in the SQL expression.",
    ),
    ("DivisionByZero", 400, "Division by zero in the SQL expression."),
    ("EmptyRequestBody", 400, "Request body cannot be empty."),
    (
        "EvaluatorInvalidArguments",
        400,
        "Incorrect number of arguments in the function call in the SQL expression.",
    ),
    (
        "IncorrectSqlFunctionArgumentType",
        400,
        "Incorrect type of arguments in function call in the SQL expression.",
    ),
    (
        "EvaluatorInvalidTimestampFormatPatternSymbol",
        400,
        "Time stamp format pattern contains an invalid symbol in the SQL expression.",
    ),
    ("InvalidColumnIndex", 400, "Column index in the SQL expression is invalid."),
    (
        "InvalidCompressionFormat",
        400,
        "The file is not in a supported compression format. Only GZIP and BZIP2 are supported.",
    ),
    ("InvalidDataSource", 400, "Invalid data source type. Only CSV, JSON, and Parquet are supported."),
    ("InvalidDataType", 400, "The SQL expression contains an invalid data type."),
    ("InvalidExpressionType", 400, "The ExpressionType is invalid. Only SQL expressions are supported."),
    (
        "InvalidFileHeaderInfo",
        400,
        "The FileHeaderInfo is invalid. Only NONE, USE, and IGNORE are supported.",
    ),
    ("InvalidJsonType", 400, "The JsonType is invalid. Only DOCUMENT and LINES are supported."),
    ("InvalidQuoteFields", 400, "The QuoteFields is invalid. Only ALWAYS and ASNEEDED are supported."),
    ("InvalidRequestParameter", 400, "The value of a parameter in the SelectRequest element is invalid."),
    ("InvalidScanRange", 400, "The provided scan range is invalid."),
    ("JSONParsingError", 400, "Encountered an error parsing the JSON file. Check the file and try again."),
    ("LexerInvalidChar", 400, "The SQL expression contains an invalid character."),
    ("LexerInvalidLiteral", 400, "The SQL expression contains an invalid literal."),
    ("MissingRequiredParameter", 400, "The SelectRequest entity is missing a required parameter."),
    (
        "OverMaxRecordSize",
        400,
        "The length of a record in the input or result is greater than maxCharsPerRecord of 1 MB.",
    ),
    (
        "ObjectSerializationConflict",
        400,
        "InputSerialization specifies more than one format (CSV, JSON, or Parquet).",
    ),
    (
        "ParquetParsingError",
        400,
        "An error occurred while parsing the Parquet file. Check the file and try again.",
    ),
    ("ParseExpectedExpression", 400, "Did not find the expected SQL expression."),
    ("ParseSelectMissingFrom", 400, "The SQL expression contains a missing FROM after the SELECT list."),
    ("ParseUnexpectedToken", 400, "The SQL expression contains an unexpected token."),
    ("UnsupportedFunction", 400, "Encountered an unsupported SQL function."),
    ("UnsupportedScanRangeInput", 400, "Scan range queries are not supported on this type of object."),
    ("UnsupportedSyntax", 400, "Encountered invalid syntax."),
    ("UnsupportedSqlOperation", 400, "Encountered an unsupported SQL operation."),
    # rs3gw's own (admin API of the dataset/model registry; not AWS codes)
    ("NoSuchRegistryEntry", 404, "The specified dataset, model or version does not exist."),
    ("RegistryConflict", 409, "The registry entry already exists or was changed concurrently."),
    # rs3gw's own (GET ?x-rs3gw-transform=..., rs3gw.transform; not AWS codes)
    ("InvalidTransformation", 400, "The requested transformation is not valid for this object."),
    ("TransformationInputTooLarge", 400, "The object is too large for the requested transformation."),
]

_BY_CODE: dict[str, type[S3Error]] = {"InternalError": S3Error}


def _define(code: str, status: int, message: str) -> type[S3Error]:
    cls = type(code, (S3Error,), {"code": code, "status": status, "default_message": message})
    _BY_CODE[code] = cls
    return cls


for _code, _status, _msg in _TABLE:
    if _code != "InternalError":
        _define(_code, _status, _msg)


def error_class(code: str) -> type[S3Error]:
    """The class for an AWS error code (used by generic paths such as XML error replay)."""
    return _BY_CODE[code]


# Explicit names so that `from rs3gw.errors import NoSuchKey` type-checks.
AccessDenied = _BY_CODE["AccessDenied"]
AuthorizationHeaderMalformed = _BY_CODE["AuthorizationHeaderMalformed"]
AuthorizationQueryParametersError = _BY_CODE["AuthorizationQueryParametersError"]
BadDigest = _BY_CODE["BadDigest"]
BadRequest = _BY_CODE["BadRequest"]
AccessForbidden = _BY_CODE["AccessForbidden"]
BucketAlreadyExists = _BY_CODE["BucketAlreadyExists"]
BucketAlreadyOwnedByYou = _BY_CODE["BucketAlreadyOwnedByYou"]
BucketNotEmpty = _BY_CODE["BucketNotEmpty"]
EntityTooLarge = _BY_CODE["EntityTooLarge"]
EntityTooSmall = _BY_CODE["EntityTooSmall"]
IncompleteBody = _BY_CODE["IncompleteBody"]
InsufficientStorage = _BY_CODE["InsufficientStorage"]
InternalError = S3Error
InvalidAccessKeyId = _BY_CODE["InvalidAccessKeyId"]
InvalidArgument = _BY_CODE["InvalidArgument"]
InvalidBucketName = _BY_CODE["InvalidBucketName"]
InvalidChunkSizeError = _BY_CODE["InvalidChunkSizeError"]
IncorrectNumberOfFilesInPostRequest = _BY_CODE["IncorrectNumberOfFilesInPostRequest"]
InvalidPolicyDocument = _BY_CODE["InvalidPolicyDocument"]
MalformedPOSTRequest = _BY_CODE["MalformedPOSTRequest"]
MaxPostPreDataLengthExceededError = _BY_CODE["MaxPostPreDataLengthExceededError"]
InvalidDigest = _BY_CODE["InvalidDigest"]
InvalidLocationConstraint = _BY_CODE["InvalidLocationConstraint"]
InvalidObjectName = _BY_CODE["InvalidObjectName"]
InvalidObjectState = _BY_CODE["InvalidObjectState"]
InvalidPart = _BY_CODE["InvalidPart"]
InvalidPartOrder = _BY_CODE["InvalidPartOrder"]
InvalidRange = _BY_CODE["InvalidRange"]
InvalidRequest = _BY_CODE["InvalidRequest"]
InvalidStorageClass = _BY_CODE["InvalidStorageClass"]
InvalidTag = _BY_CODE["InvalidTag"]
InvalidURI = _BY_CODE["InvalidURI"]
KeyTooLongError = _BY_CODE["KeyTooLongError"]
MalformedXML = _BY_CODE["MalformedXML"]
MetadataTooLarge = _BY_CODE["MetadataTooLarge"]
MethodNotAllowed = _BY_CODE["MethodNotAllowed"]
MissingContentLength = _BY_CODE["MissingContentLength"]
NoSuchBucket = _BY_CODE["NoSuchBucket"]
NoSuchKey = _BY_CODE["NoSuchKey"]
NoSuchUpload = _BY_CODE["NoSuchUpload"]
NoSuchVersion = _BY_CODE["NoSuchVersion"]
NotImplementedError_ = _BY_CODE["NotImplemented"]
NotModified = _BY_CODE["NotModified"]
PreconditionFailed = _BY_CODE["PreconditionFailed"]
RequestTimeTooSkewed = _BY_CODE["RequestTimeTooSkewed"]
RestoreAlreadyInProgress = _BY_CODE["RestoreAlreadyInProgress"]
SignatureDoesNotMatch = _BY_CODE["SignatureDoesNotMatch"]
SlowDown = _BY_CODE["SlowDown"]
XAmzContentSHA256Mismatch = _BY_CODE["XAmzContentSHA256Mismatch"]
InvalidPartNumber = _define("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
NoSuchBucketPolicy = _BY_CODE["NoSuchBucketPolicy"]
NoSuchTagSet = _BY_CODE["NoSuchTagSet"]
NoSuchCORSConfiguration = _BY_CODE["NoSuchCORSConfiguration"]
# rs3gw admin API for users and access keys (IAM's codes and statuses)
NoSuchEntity = _define("NoSuchEntity", 404, "The request referenced an entity that does not exist.")
EntityAlreadyExists = _define("EntityAlreadyExists", 409, "The request would create an entity that exists.")
# rs3gw dataset/model registry (engine/registry.py)
NoSuchRegistryEntry = _BY_CODE["NoSuchRegistryEntry"]
RegistryConflict = _BY_CODE["RegistryConflict"]
# Bucket sub-resources rs3gw answers with its real behaviour (protocol/handlers/bucket_probes.py);
# codes and messages as AWS answers a bucket that has none of these configured.
NoSuchWebsiteConfiguration = _define(
    "NoSuchWebsiteConfiguration", 404, "The specified bucket does not have a website configuration"
)
ReplicationConfigurationNotFoundError = _define(
    "ReplicationConfigurationNotFoundError", 404, "The replication configuration was not found"
)
OwnershipControlsNotFoundError = _define(
    "OwnershipControlsNotFoundError", 404, "The bucket ownership controls were not found"
)
NoSuchConfiguration = _define("NoSuchConfiguration", 404, "The specified configuration does not exist.")
