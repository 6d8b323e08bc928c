"""De-identify what the DICOM exporters write: PS3.15 Annex E, Basic Application Level Confidentiality Profile.

Applied with the Retain UIDs option (E.3.9), so the SR and SEG still point at
the source images a viewer holds; private attributes are removed. The table
is the profile's attributes that an SR or SEG derived from a source image can
carry (patient, study, equipment and people), each with its action code:
X remove, Z empty (Type 2: the element stays), D a dummy value. The
equipment attributes of the SR/SEG itself (manufacturer, device serial number)
name evlf and the model's weights, not the scanner, and stay.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

#: Attribute keyword -> PS3.15 Table E.1-1 action (basic profile column, reduced to X / Z / D).
BASIC_PROFILE: dict[str, str] = {
    "PatientName": "Z",
    "PatientID": "Z",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientSex": "Z",
    "PatientAge": "X",
    "PatientSize": "X",
    "PatientWeight": "X",
    "PatientAddress": "X",
    "PatientTelephoneNumbers": "X",
    "PatientMotherBirthName": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "IssuerOfPatientID": "X",
    "EthnicGroup": "X",
    "Occupation": "X",
    "MilitaryRank": "X",
    "MedicalRecordLocator": "X",
    "PatientComments": "X",
    "AdditionalPatientHistory": "X",
    "PatientReligiousPreference": "X",
    "ResponsiblePerson": "X",
    "AccessionNumber": "Z",
    "StudyID": "Z",
    "StudyDate": "Z",
    "StudyTime": "Z",
    "SeriesDate": "X",
    "SeriesTime": "X",
    "AcquisitionDate": "X",
    "AcquisitionTime": "X",
    "ContentDate": "D",  # Type 1 in SR and SEG: a dummy, as the profile's Z/D allows
    "ContentTime": "D",
    "InstanceCreationDate": "X",
    "InstanceCreationTime": "X",
    "AcquisitionDateTime": "X",
    "StudyDescription": "X",
    "SeriesDescription": "X",
    "RequestedProcedureDescription": "X",
    "PerformedProcedureStepDescription": "X",
    "ReferringPhysicianName": "Z",
    "PerformingPhysicianName": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "OperatorsName": "X",
    "PhysiciansOfRecord": "X",
    "RequestingPhysician": "X",
    "VerifyingObserverName": "D",
    "PersonName": "D",
    "InstitutionName": "X",
    "InstitutionAddress": "X",
    "InstitutionalDepartmentName": "X",
    "StationName": "X",
    "ProtocolName": "X",
    "AdmissionID": "X",
    "ImageComments": "X",
    "RequestAttributesSequence": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedStudySequence": "X",
}
DUMMY = {"PN": "ANONYMOUS", "DA": "19000101", "TM": "000000"}


def _clean(dataset: Any, element: Any) -> None:
    action = BASIC_PROFILE.get(element.keyword)
    if action == "X":
        del dataset[element.tag]
    elif action == "Z":
        element.value = [] if element.VR == "SQ" else ""
    elif action == "D":
        element.value = DUMMY.get(element.VR, "")


def deidentify_dataset(dataset: Any) -> Any:
    """The dataset with the profile applied in place, nested sequences included; returns it."""
    dataset.remove_private_tags()
    dataset.walk(_clean)
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "PS3.15 Basic Profile, Retain UIDs (evlf)"
    codes = __import__("pydicom").Dataset()
    codes.CodeValue, codes.CodingSchemeDesignator, codes.CodeMeaning = "113100", "DCM", "Basic Application Confidentiality Profile"
    retain = __import__("pydicom").Dataset()
    retain.CodeValue, retain.CodingSchemeDesignator, retain.CodeMeaning = "113110", "DCM", "Retain UIDs Option"
    dataset.DeidentificationMethodCodeSequence = [codes, retain]
    return dataset


def deidentify_bytes(content: bytes) -> bytes:
    """A written DICOM file, de-identified."""
    import pydicom

    dataset = pydicom.dcmread(BytesIO(content))
    deidentify_dataset(dataset)
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
